"""Reusable test support: free ports, supervised subprocesses, real etcd clusters.

Everything here is synchronous so that module-scoped pytest fixtures can use it; the one
asynchronous helper, :func:`tests.support.processes.async_wait_for`, polls from trio tests.
Every process started through this package is stopped by its context manager, by process
group, never by name.
"""
