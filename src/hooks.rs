//! Git hook scripts: install and uninstall (being written).
