return require("portway.router").route_fast()
