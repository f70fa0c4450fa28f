"""The local exchange simulator (WebSocket server on 127.0.0.1) and its market; and a local
Ethereum node (``EthereumNode``) for on-chain collection."""

from rtkit.sim.dialects import dialect_names, get_dialect
from rtkit.sim.faults import Faults
from rtkit.sim.market import CommonFactor, Market, SimTrade
from rtkit.sim.node import EthereumNode
from rtkit.sim.rest import SimRest
from rtkit.sim.server import Simulator

__all__ = ["CommonFactor", "EthereumNode", "Faults", "Market", "SimTrade", "SimRest", "Simulator",
           "dialect_names", "get_dialect"]
