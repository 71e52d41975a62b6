"""Messaging models: each module is one concept (a work queue, a service chain, ...)."""
