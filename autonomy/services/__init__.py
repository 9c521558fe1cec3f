"""Every write of the autonomy app, one module per job:

- ``controller``: a decision's disposition (applied or queued for a person) and a person's
  answer to a review item;
- ``transitions``: promote, demote and roll back a policy's phase;
- ``learning``: calibration refits and model retraining;
- ``monitor``: the quality monitor's checks, alerts, demotions and promotion proposals;
- ``notify``: emails to supervisors.
"""
