"""Policies, reward models' serving forms, slate construction, propensities and the simulator.

Pure numpy, no I/O: nothing here knows about gRPC, Kafka or Redis.
"""
