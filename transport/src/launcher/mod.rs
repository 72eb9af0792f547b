//! The zrun launcher.
