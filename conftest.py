pytest_plugins = ["portway.testing.fixtures"]
