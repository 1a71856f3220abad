"""The ZeroMQ bus: the broker and the client helpers."""

from .broker import Broker
from .client import BusClient, Publisher, Subscriber
from .endpoints import BusError, Endpoints, RuntimeDirError, runtime_dir
from .keys import BusKeyError, KeyStore

__all__ = ["Broker", "BusClient", "BusError", "BusKeyError", "Endpoints", "KeyStore", "Publisher", "RuntimeDirError", "Subscriber", "runtime_dir"]
