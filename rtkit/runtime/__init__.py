"""What runs a collector: its configuration, status machine, registry, receive and
writer threads. ``rtkit.collector.Collector`` ties them together."""
