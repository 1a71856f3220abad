"""embodied-assistant core: messages, bus, service runtime, config and CLI."""
