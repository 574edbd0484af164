require("portway.router").route()
