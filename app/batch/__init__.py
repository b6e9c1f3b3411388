"""Cohort-scale synthesis and hallucination QA on Dask (no Qt, no torch at import time).

``cases`` finds the cases of a cohort, ``case_run`` runs one case on a worker (load, domain check,
synthesize, compare, write atomically), ``cohort`` schedules them on a Dask cluster and keeps the
results table, ``report`` writes the cohort HTML report.
"""
