"""The node agent (the kubelet and the service proxy): runtimes, pod building blocks, networking."""
