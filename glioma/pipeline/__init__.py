"""The study as a declared graph of steps, and the one get-or-run that runs it.

``graph`` (nodes and graphs), ``keys`` (the reuse key), ``ensure`` (get-or-run), ``executors``
and ``ray_executor`` (serial or Ray), ``steps/`` (one module per step), ``nodes`` (declaring
nodes), ``study`` (``main``'s graph), ``entries`` (each single entry point's graph), ``tune``.
"""
