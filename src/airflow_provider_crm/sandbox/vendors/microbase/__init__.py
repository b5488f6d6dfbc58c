"""The MicroBase emulator: the customer service's RPC operations and its OAuth token endpoint."""
