using System.Formats.Tar;
using System.Text;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime.Tests;

[Trait("Category", "Unit")]
public sealed class RuncCommandLineTests
{
    [Fact]
    public void The_shims_create_is_parsed_and_its_global_flags_kept_as_given()
    {
        var line = RuncCommandLine.Parse(["--root", "/run/r", "--log", "/b/log.json", "--log-format=json", "--systemd-cgroup",
            "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket=/s.sock", "--no-pivot", "ctr1"]);

        line.GlobalArgs.ShouldBe(["--root", "/run/r", "--log", "/b/log.json", "--log-format=json", "--systemd-cgroup"]);
        (line.Root, line.Log, line.LogFormat, line.Command).ShouldBe(("/run/r", "/b/log.json", "json", "create"));
        line.ParseCreate().ShouldBe(new CreateArgs("ctr1", "/b", "/s.sock", "/b/init.pid", NoPivot: true, NoNewKeyring: false, PreserveFds: false));
    }

    [Fact]
    public void An_unknown_create_flag_or_another_verb_is_left_to_runc()
    {
        RuncCommandLine.Parse(["create", "--future-flag", "x", "id"]).ParseCreate().ShouldBeNull();
        RuncCommandLine.Parse(["state", "id"]).ParseCreate().ShouldBeNull();
        RuncCommandLine.Parse(["start", "id"]).ParseStartId().ShouldBe("id");
        RuncCommandLine.Parse(["--version"]).Command.ShouldBeNull();
    }
}

[Trait("Category", "Unit")]
public sealed class CreateActionTests
{
    private static OciSpec Spec(Dictionary<string, string> annotations) => new(annotations, ["/proc", "/data/"], "rootfs", CredentialCheckTests.Grant("{}"));

    private static Dictionary<string, string> Container(string? restartCount = "0") => new()
    {
        [RestoreAnnotations.Checkpoint] = "ck-1",
        [RestoreAnnotations.CriContainerType] = "container",
        [RestoreAnnotations.CriContainerName] = "app",
        [RestoreAnnotations.CriSandboxNamespace] = "ns",
        [RestoreAnnotations.CriSandboxName] = "pod",
        [RestoreAnnotations.CriSandboxUid] = "uid-1",
        [RestoreAnnotations.RestartCount] = restartCount ?? "",
    };

    [Fact]
    public void Only_the_first_create_of_the_target_container_restores()
    {
        CreateAction.Decide(Spec(Container())).ShouldBeOfType<CreateAction.Restore>().CheckpointId.ShouldBe("ck-1");
        CreateAction.Decide(Spec(Container("1"))).ShouldBeOfType<CreateAction.PassThrough>();
        var sandbox = Container();
        sandbox[RestoreAnnotations.CriContainerType] = "sandbox";
        CreateAction.Decide(Spec(sandbox)).ShouldBeOfType<CreateAction.PassThrough>();
        var sidecar = Container();
        sidecar[RestoreAnnotations.Container] = "other";
        CreateAction.Decide(Spec(sidecar)).ShouldBeOfType<CreateAction.PassThrough>();
        CreateAction.Decide(Spec([])).ShouldBeOfType<CreateAction.PassThrough>();
    }

    [Fact]
    public void Pages_are_restored_lazily_only_when_the_pod_asks_for_it()
    {
        CreateAction.Decide(Spec(Container())).ShouldBeOfType<CreateAction.Restore>().LazyPages.ShouldBeFalse("eager when absent: a controller that does not wait for the pages never gets a lazy restore");
        var lazy = Container();
        lazy[RestoreAnnotations.Pages] = RestoreAnnotations.PagesLazy;
        CreateAction.Decide(Spec(lazy)).ShouldBeOfType<CreateAction.Restore>().LazyPages.ShouldBeTrue();
        lazy[RestoreAnnotations.Pages] = RestoreAnnotations.PagesEager;
        CreateAction.Decide(Spec(lazy)).ShouldBeOfType<CreateAction.Restore>().LazyPages.ShouldBeFalse();
        lazy[RestoreAnnotations.Pages] = "sometimes";
        Should.Throw<RuntimeException>(() => CreateAction.Decide(Spec(lazy))).Message.ShouldContain("is not lazy or eager");
    }

    [Fact]
    public void A_lazy_restore_asks_runc_for_lazy_pages_in_the_same_work_directory()
    {
        var line = RuncCommandLine.Parse(["--root", "/run/r", "--criu", "/usr/local/sbin/criu", "create", "--bundle", "/b", "ctr1"]);
        var create = line.ParseCreate()!;
        line.Criu.ShouldBe("/usr/local/sbin/criu");
        line.RestoreArgs(create, "/p/ck/checkpoint", "/b/work", lazyPages: true)
            .ShouldBe(["--root", "/run/r", "--criu", "/usr/local/sbin/criu", "restore", "--detach", "--bundle", "/b", "--image-path", "/p/ck/checkpoint", "--work-path", "/b/work", "--lazy-pages", "ctr1"]);
        line.RestoreArgs(create, "/p/ck/checkpoint", "/b/work").ShouldNotContain("--lazy-pages");
    }

    [Theory]
    [InlineData("../etc")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("")]
    public void A_checkpoint_id_that_is_not_one_path_component_is_refused(string id)
    {
        var annotations = Container();
        annotations[RestoreAnnotations.Checkpoint] = id;
        Should.Throw<RuntimeException>(() => CreateAction.Decide(Spec(annotations)));
    }

    [Fact]
    public void The_seal_must_name_this_pod_and_container_and_its_mounts_must_exist()
    {
        var identity = ContainerIdentity.From(Spec(Container()));
        PreparedCheckpoint Seal(string name, string? uid = null) => new() { CheckpointId = "ck-1", PodNamespace = "ns", PodName = name, PodUid = uid, ContainerName = "app", MountDestinations = ["/proc", "/data", "/secret"] };

        identity.Mismatch(Seal("pod")).ShouldBeNull();
        identity.Mismatch(Seal("pod", "uid-1")).ShouldBeNull();
        identity.Mismatch(Seal("pod", "uid-2")).ShouldNotBeNull();
        identity.Mismatch(Seal("other"))!.ShouldContain("was prepared for ns/other/app, not for ns/pod[uid-1]/app");
        ContainerIdentity.MissingMounts(Seal("pod"), Spec(Container())).ShouldBe(["/secret"]);
    }
}

[Trait("Category", "Unit")]
public sealed class RootFsDiffTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("pm-rootfs-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static MemoryStream Tar(params TarEntry[] entries)
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var e in entries) writer.WriteEntry(e);
        }
        stream.Position = 0;
        return stream;
    }

    private static PaxTarEntry File_(string name, string content)
        => new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)), Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite };

    [Fact]
    public void Files_directories_links_and_whiteouts_are_applied_inside_the_root()
    {
        Directory.CreateDirectory(Path.Combine(_root, "usr/lib"));
        File.CreateSymbolicLink(Path.Combine(_root, "lib"), "/usr/lib"); // an absolute link: the container's /usr/lib
        File.WriteAllText(Path.Combine(_root, "old"), "x");

        RootFsDiff.ApplyTar(_root, Tar(
            new PaxTarEntry(TarEntryType.Directory, "var/data/") { Mode = (UnixFileMode)0b111_101_101 },
            File_("var/data/f", "hello"),
            File_("lib/libx.so", "via the link"),
            new PaxTarEntry(TarEntryType.SymbolicLink, "var/link") { LinkName = "../etc/passwd" },
            new PaxTarEntry(TarEntryType.RegularFile, ".wh.old")));

        File.ReadAllText(Path.Combine(_root, "var/data/f")).ShouldBe("hello");
        File.ReadAllText(Path.Combine(_root, "usr/lib/libx.so")).ShouldBe("via the link", "a link in the path resolves inside the root");
        new FileInfo(Path.Combine(_root, "var/link")).LinkTarget.ShouldBe("../etc/passwd");
        File.Exists(Path.Combine(_root, "old")).ShouldBeFalse();
    }

    [Fact]
    public void A_link_in_the_root_that_points_out_of_it_is_followed_inside_the_root()
    {
        var outside = Directory.CreateTempSubdirectory("pm-outside-").FullName;
        try
        {
            File.CreateSymbolicLink(Path.Combine(_root, "evil"), outside);
            RootFsDiff.ApplyTar(_root, Tar(File_("evil/planted", "x")));
            File.Exists(Path.Combine(outside, "planted")).ShouldBeFalse("nothing is written outside the root");
            File.Exists(Path.Combine(_root, outside.TrimStart('/'), "planted")).ShouldBeTrue();
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../escape")]
    [InlineData("a/../../escape")]
    public void Absolute_and_dot_dot_names_are_refused(string name)
        => Should.Throw<RuntimeException>(() => RootFsDiff.ApplyTar(_root, Tar(File_(name, "x")))).Message.ShouldContain("an absolute path or a path with '..'");

    [Fact]
    public void Escaping_symlinks_devices_and_escaping_hard_links_are_refused()
    {
        Should.Throw<RuntimeException>(() => RootFsDiff.ApplyTar(_root, Tar(new PaxTarEntry(TarEntryType.SymbolicLink, "a/l") { LinkName = "../../etc/shadow" })))
            .Message.ShouldContain("leads out of the root file system");
        Should.Throw<RuntimeException>(() => RootFsDiff.ApplyTar(_root, Tar(new PaxTarEntry(TarEntryType.CharacterDevice, "dev/mem") { DeviceMajor = 1, DeviceMinor = 1 })))
            .Message.ShouldContain("CharacterDevice");
        Should.Throw<RuntimeException>(() => RootFsDiff.ApplyTar(_root, Tar(new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "../etc/shadow" })))
            .Message.ShouldContain("hard link");
    }

    [Fact]
    public void Deleted_files_are_removed_without_following_links_and_dot_dot_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(_root, "tmp"));
        File.WriteAllText(Path.Combine(_root, "tmp/gone"), "x");
        RootFsDiff.ApplyDeletions(_root, new MemoryStream("""["/tmp/gone", "/tmp/never-there"]"""u8.ToArray())).ShouldBe(1);
        File.Exists(Path.Combine(_root, "tmp/gone")).ShouldBeFalse();
        Should.Throw<RuntimeException>(() => RootFsDiff.ApplyDeletions(_root, new MemoryStream("""["/../etc"]"""u8.ToArray())));
    }
}
