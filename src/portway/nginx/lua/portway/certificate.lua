require("portway.router").certificate()
