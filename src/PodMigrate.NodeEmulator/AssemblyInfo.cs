// The controller project: see PodMigrate.Controller.csproj for what lives here.
