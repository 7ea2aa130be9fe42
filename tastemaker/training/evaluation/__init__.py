"""Off-policy evaluation: the estimators (`ope.py`), home-page logs (`evaluate.py`, in memory, and `beam_ope.py`,
on Apache Beam), action logs people bring (`action_*`, `log_readers.py`), the policies re-run on the logs,
the DM/DR reward model, and the HTML report."""
