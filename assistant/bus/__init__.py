"""The ZeroMQ bus: the broker and the client helpers."""

from .broker import Broker
from .client import BusClient, BusError, Publisher, Subscriber
from .endpoints import Endpoints, runtime_dir

__all__ = ["Broker", "BusClient", "BusError", "Endpoints", "Publisher", "Subscriber", "runtime_dir"]
