"""The status page: services and their state, the conversation, the camera preview with face boxes
and exposure, the live face, latency and counters, and Prometheus metrics, all from the bus.

``board.StatusBoard`` keeps the picture (plain class), ``web.StatusServer`` serves it over HTTP,
``service.OpsService`` feeds the board from the bus.
"""
