using PodMigrate.Fuzz.Harnesses;
using PodMigrate.Fuzz.Runtime;

namespace PodMigrate.Runtime.Tests.Fuzz;

/// <summary>
/// Every input that made the runtime-cmdline fuzz harness (tests/PodMigrate.Fuzz, scripts/fuzz.sh) fail, replayed
/// through the same checks on every CI run: Fuzz/Inputs/runtime-cmdline/, one file each, named for the bug.
/// </summary>
[Trait("Category", "Unit")]
public sealed class RuntimeCommandLineFuzzRegressionTests
{
    private static string InputDirectory => Path.Combine(AppContext.BaseDirectory, "Fuzz", "Inputs", "runtime-cmdline");

    public static TheoryData<string> Inputs()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(InputDirectory).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Command_lines_that_found_bugs_pass_the_runtime_cmdline_checks(string input)
    {
        RuntimeCommandLineHarness.Parse = RuntimeCommandLineChecks.Check;
        RuntimeCommandLineHarness.Run(File.ReadAllBytes(Path.Combine(InputDirectory, input)));
    }

    [Fact]
    public void An_id_that_runc_would_read_as_a_flag_is_never_restored_or_started()
    {
        // Found by review while wiring the harness: `create -- -x` gave the id "-x", which ended the restore line, where
        // runc reads it as a flag. Such a line now goes to runc unchanged (which refuses the id).
        RuncCommandLine.Parse(["create", "--bundle", "/b", "--", "-x"]).ParseCreate().ShouldBeNull();
        RuncCommandLine.Parse(["start", "--help"]).ParseStartId().ShouldBeNull();
        RuncCommandLine.Parse(["create", "--bundle", "/b", "a/../b"]).ParseCreate().ShouldBeNull();
    }

    [Fact]
    public void A_create_line_runc_would_refuse_goes_to_runc_and_an_empty_bundle_is_the_current_directory()
    {
        // Found by the runtime-cmdline fuzzer: `--bundle ""` reached the spec's path and the restore line as "", and a
        // create with a second argument (which runc refuses) was taken as a restore of the first.
        RuncCommandLine.Parse(["create", "--bundle", "", "c"]).ParseCreate()!.Bundle.ShouldBe(Directory.GetCurrentDirectory());
        RuncCommandLine.Parse(["create", "--bundle", "/b", "c", "d"]).ParseCreate().ShouldBeNull();
        RuncCommandLine.Parse(["create", "--bundle", "/b", "--", "c", "d"]).ParseCreate().ShouldBeNull();
        RuncCommandLine.Parse(["create", "c", "--", "d"]).ParseCreate().ShouldBeNull();
        RuncCommandLine.Parse(["create", "--bundle", "/b", "--", "c"]).ParseCreate()!.Id.ShouldBe("c");
    }

    [Theory]
    [InlineData(new[] { "--root", "/r", "create", "--bundle", "/b", "c" }, true)]
    [InlineData(new[] { "--root=/r", "--log", "/l", "start", "c" }, true)]
    [InlineData(new[] { "--root", "create", "state", "c" }, false)] // "create" is --root's value
    [InlineData(new[] { "--systemd-cgroup", "state", "c" }, false)]
    [InlineData(new[] { "--version" }, false)]
    [InlineData(new string[0], false)]
    public void The_fast_path_sends_everything_but_create_and_start_to_runc(string[] args, bool mayBeHandled)
        => RuncCommandLine.MayBeHandled(args).ShouldBe(mayBeHandled);
}
