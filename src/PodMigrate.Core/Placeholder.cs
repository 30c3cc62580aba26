namespace PodMigrate.Core; internal static class Placeholder { }
