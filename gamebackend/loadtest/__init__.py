"""Load generation for the gateway (``manage.py loadbots``, ``bench/gateway_bench.py``).

The engine (``bots``) imports no Django settings, so the benchmark can run it in plain
subprocesses pinned to their own core.
"""
