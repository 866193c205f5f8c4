"""The node agent proper (the kubelet): Node registration, pod workers, probes, hooks, its gRPC API."""
