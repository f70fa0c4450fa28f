"""The local exchange simulator (WebSocket server on 127.0.0.1) and its market."""

from rtkit.sim.dialects import dialect_names, get_dialect
from rtkit.sim.market import Market, SimTrade
from rtkit.sim.server import Faults, Simulator

__all__ = ["Faults", "Market", "SimTrade", "Simulator", "dialect_names", "get_dialect"]
