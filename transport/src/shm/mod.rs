//! Shared memory between ranks of one node. CONTRACT: see the helper brief.
