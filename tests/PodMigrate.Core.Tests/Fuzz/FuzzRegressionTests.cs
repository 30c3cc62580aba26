using System.Formats.Tar;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Fuzz.Harnesses;

namespace PodMigrate.Core.Tests.Fuzz;

/// <summary>
/// Every input that made a fuzz harness (tests/PodMigrate.Fuzz, scripts/fuzz.sh) fail, replayed through the same
/// harness code on every CI run. The inputs live in Fuzz/Inputs/&lt;harness&gt;/, one file each, named for the bug.
/// </summary>
[Trait("Category", "Unit")]
public sealed class FuzzRegressionTests
{
    private static string InputDirectory(string harness) => Path.Combine(AppContext.BaseDirectory, "Fuzz", "Inputs", harness);

    public static TheoryData<string> ArchiveInputs => Inputs("archive");

    public static TheoryData<string> PathInputs => Inputs("paths");

    [Theory]
    [MemberData(nameof(PathInputs))]
    public void Path_inputs_that_found_bugs_pass_the_paths_harness(string input)
        => PathsHarness.Run(File.ReadAllBytes(Path.Combine(InputDirectory("paths"), input)));

    [Theory]
    [MemberData(nameof(ArchiveInputs))]
    public void Archive_inputs_that_found_bugs_pass_the_archive_harness(string input)
    {
        var scratch = Path.Combine(Path.GetTempPath(), "pm-fuzz-regression-" + Guid.NewGuid().ToString("N"));
        try
        {
            ArchiveHarness.Run(File.ReadAllBytes(Path.Combine(InputDirectory("archive"), input)), scratch);
        }
        finally
        {
            if (Directory.Exists(scratch))
            {
                Directory.Delete(scratch, recursive: true);
            }
        }
    }

    [Fact]
    public void A_checkpoint_id_with_a_trailing_newline_is_refused()
    {
        // Found by the paths harness: the id pattern's "$" also matched before a final "\n", so "swd\n" was an id
        // (and a directory name on the share).
        CheckpointId.TryParse("swd\n", out _).ShouldBeFalse();
        Should.Throw<PodMigrateException>(() => CheckpointId.Parse("ck-1\n")).Kind.ShouldBe(ErrorKind.InvalidArgument);
    }

    [Fact]
    public void A_symlink_chain_cannot_lead_out_of_the_target()
    {
        // Each link alone stays inside ("s/a" -> ".." is the root, "s/l" -> "a/.." counted lexically is "s"), but the
        // kernel resolves "a" before "..": s/l is root/.., the target's parent. Found by review while writing the archive
        // harness, whose physical link check fails on it; the rule is now that ".." may only lead a link target.
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "s/"));
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "s/a") { LinkName = ".." });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "s/l") { LinkName = "a/.." });
        }

        var scratch = Path.Combine(Path.GetTempPath(), "pm-fuzz-regression-" + Guid.NewGuid().ToString("N"));
        try
        {
            ArchiveHarness.Run([0, .. tar.ToArray()], scratch);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static TheoryData<string> Inputs(string harness)
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(InputDirectory(harness)).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }

        return data;
    }
}
