"""The study as a declared graph of steps, and the one get-or-run that runs it.

``graph`` (nodes and graphs), ``keys`` (the reuse key), ``ensure`` (get-or-run), ``executors``
and ``ray_executor`` (serial or Ray), ``invoke`` (running an entry point's graph), ``steps/``
(one module per step: its inputs, run, node builder and entry point), ``study`` (``main``'s
graph), ``summary`` (``main``'s figures and tables), ``tune``.
"""
