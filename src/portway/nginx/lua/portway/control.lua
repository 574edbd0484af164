require("portway.router").control()
