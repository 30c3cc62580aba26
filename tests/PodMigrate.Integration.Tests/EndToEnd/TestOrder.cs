using Xunit.Abstractions;
using Xunit.Sdk;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>Runs this test before the others of its class (with <see cref="RunsFirstOrderer"/>): e.g. a control run whose figures a later test prints.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class RunsFirstAttribute : Attribute;

/// <summary>Orders a class's tests: those marked <see cref="RunsFirstAttribute"/> first, the rest by name (stable).</summary>
public sealed class RunsFirstOrderer : ITestCaseOrderer
{
    public const string TypeName = "PodMigrate.Integration.Tests.EndToEnd.RunsFirstOrderer";
    public const string AssemblyName = "PodMigrate.Integration.Tests";

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases)
        where TTestCase : ITestCase
        => testCases
            .OrderBy(t => t.TestMethod.Method.GetCustomAttributes(typeof(RunsFirstAttribute).AssemblyQualifiedName).Any() ? 0 : 1)
            .ThenBy(t => t.TestMethod.Method.Name, StringComparer.Ordinal);
}
