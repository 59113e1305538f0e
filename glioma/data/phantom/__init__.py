"""A two-site synthetic glioma cohort written as real NIfTI files (BraTS tree + manifest CSV)."""

from glioma.data.phantom.cohort import generate_cohort, plan_site, render_subject, site_input
from glioma.data.phantom.sites import SITES

__all__ = ["SITES", "generate_cohort", "plan_site", "render_subject", "site_input"]
