//! TCP between nodes. CONTRACT: see the helper brief.
