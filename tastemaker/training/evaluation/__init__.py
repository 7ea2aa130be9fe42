"""Off-policy evaluation. One way in: `job.run(EvaluationJob(...))` picks the engine and the log
family. Beneath it: the estimators (`ope.py`), rewarded home-page decisions (`evaluate.py` in
memory, `beam_ope.py` on Apache Beam) with the policies re-run on them (`home_policies.py`, the
serving strategies themselves) and the DM/DR cell reward model (`home_reward_model.py`); action
logs people bring (`action_*`, `log_readers.py`, `beam_action_ope.py`); the pseudo-inverse slate
estimator; the HTML report."""
