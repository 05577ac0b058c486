"""plexus sim: a discrete-event LoRa mesh simulator that runs the node core over a radio model.

Public API::

    from plexus.sim import run_scenario, load_scenario, SimResult, ScenarioError
    result = run_scenario("town", router="plexus", seed=1)
    result.metrics["delivery_ratio"]

Scenario schema and metric definitions: docs/scenarios.md.
"""

from plexus.sim.engine import ROUTERS, SimResult, TxRecord, run_scenario
from plexus.sim.scenario import ScenarioError, bundled_names, load_scenario

__all__ = ["ROUTERS", "ScenarioError", "SimResult", "TxRecord", "bundled_names", "load_scenario", "run_scenario"]
