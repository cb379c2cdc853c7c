"""Data files shipped with riskengine (installed as ``riskengine.data``): the default economy,
the scenario library and cluster examples."""
