// The node emulator: see PodMigrate.NodeEmulator.csproj for what lives here.
