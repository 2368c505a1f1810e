"""Package data shipped with hyoka: the published 35 x 19 score table (CC-BY 4.0, see
ATTRIBUTION.md) and the compute-budget table used as defaults by `hyoka analyze`."""
