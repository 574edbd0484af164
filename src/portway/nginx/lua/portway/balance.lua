require("portway.router").balance()
