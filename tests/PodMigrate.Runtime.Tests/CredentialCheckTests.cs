using System.Text.Json;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime.Tests;

/// <summary>The restored process holds nothing the new spec does not grant (the Critical advisory against restore-via-create).</summary>
[Trait("Category", "Unit")]
public sealed class CredentialCheckTests
{
    // containerd's default capability set (CRI), as masks.
    private const ulong Default = (1UL << 0) | (1UL << 1) | (1UL << 3) | (1UL << 4) | (1UL << 5) | (1UL << 6) | (1UL << 7) | (1UL << 8)
        | (1UL << 10) | (1UL << 13) | (1UL << 18) | (1UL << 27) | (1UL << 29) | (1UL << 31);

    private const string DefaultCaps = """["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_CHROOT","CAP_MKNOD","CAP_AUDIT_WRITE","CAP_SETFCAP"]""";

    internal static OciProcessGrant Grant(string json)
    {
        using var document = JsonDocument.Parse(json);
        return OciProcessGrant.Parse(document.RootElement);
    }

    private static OciProcessGrant RootWithDefaults() => Grant(
        """{"process":{"user":{"uid":0,"gid":0,"additionalGids":[0,10]},"capabilities":{"bounding":""" + DefaultCaps
        + ""","effective":""" + DefaultCaps + ""","permitted":""" + DefaultCaps + "}}}");

    /// <summary>runAsUser 1000, runAsGroup 3000, drop ALL, add NET_BIND_SERVICE, allowPrivilegeEscalation false, RuntimeDefault.</summary>
    private static OciProcessGrant Restricted() => Grant("""
        {"process":{"user":{"uid":1000,"gid":3000,"additionalGids":[3000]},"noNewPrivileges":true,
          "capabilities":{"bounding":["CAP_NET_BIND_SERVICE"],"effective":["CAP_NET_BIND_SERVICE"],"permitted":["CAP_NET_BIND_SERVICE"]}},
         "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}
        """);

    private static CheckpointedThread Root() => new()
    {
        Pid = 1, Tid = 1, Command = "counter", Groups = [0, 10],
        CapBounding = Default, CapPermitted = Default, CapEffective = Default,
        NoNewPrivileges = false, SeccompMode = "disabled",
    };

    private static CheckpointedThread User1000() => new()
    {
        Pid = 1, Tid = 1, Command = "counter", Uid = 1000, EffectiveUid = 1000, SavedUid = 1000, FsUid = 1000,
        Gid = 3000, EffectiveGid = 3000, SavedGid = 3000, FsGid = 3000, Groups = [3000],
        CapBounding = 1UL << 10, NoNewPrivileges = true, SeccompMode = "filter",
    };

    [Fact]
    public void The_spec_is_parsed_into_masks_ids_and_flags()
    {
        var grant = Restricted();

        (grant.Uid, grant.Gid, grant.NoNewPrivileges, grant.Seccomp).ShouldBe((1000u, 3000u, true, true));
        grant.AdditionalGids.ShouldBe([3000u]);
        grant.Bounding.ShouldBe(1UL << 10);
        RootWithDefaults().Bounding.ShouldBe(Default);
        OciProcessGrant.Describe((1UL << 21) | (1UL << 12)).ShouldBe("CAP_NET_ADMIN, CAP_SYS_ADMIN");
    }

    [Fact]
    public void A_process_restored_into_the_spec_it_ran_under_passes()
    {
        CredentialCheck.Excess([Root()], RootWithDefaults()).ShouldBeEmpty();
        CredentialCheck.Excess([User1000()], Restricted()).ShouldBeEmpty();
    }

    [Fact]
    public void A_root_process_with_the_default_capabilities_is_refused_under_a_restricted_spec_naming_each_excess()
    {
        var excess = CredentialCheck.Excess([Root()], Restricted()).ShouldHaveSingleItem();

        excess.ShouldStartWith("pid 1 (counter): ");
        excess.ShouldContain("effective capabilities CAP_CHOWN, CAP_DAC_OVERRIDE");
        excess.ShouldNotContain("CAP_NET_BIND_SERVICE,");
        excess.ShouldContain("uid 0 where the spec runs as 1000 without CAP_SETUID");
        excess.ShouldContain("gid 0 where the spec runs as 3000 without CAP_SETGID");
        excess.ShouldContain("supplementary group 0, 10 where");
        excess.ShouldContain("no_new_privs is off");
        excess.ShouldContain("without a seccomp filter");
    }

    [Fact]
    public void A_capability_beyond_the_bounding_set_is_refused_even_when_only_the_bounding_set_holds_it()
    {
        var sysAdmin = Root() with { CapBounding = Default | (1UL << 21) };

        CredentialCheck.Excess([sysAdmin], RootWithDefaults()).ShouldHaveSingleItem()
            .ShouldContain("bounding capabilities CAP_SYS_ADMIN are not in the spec's bounding set");
        CredentialCheck.Excess([Root() with { CapAmbient = 1UL << 12 }], RootWithDefaults()).ShouldHaveSingleItem()
            .ShouldContain("ambient capabilities CAP_NET_ADMIN");
    }

    [Fact]
    public void With_CAP_SETUID_and_CAP_SETGID_a_root_spec_accepts_a_process_that_changed_its_ids()
    {
        var worker = Root() with { Uid = 33, EffectiveUid = 33, SavedUid = 33, FsUid = 33, Gid = 33, EffectiveGid = 33, Groups = [33] };

        CredentialCheck.Excess([worker], RootWithDefaults()).ShouldBeEmpty();
    }

    [Fact]
    public void Every_thread_is_checked_and_named()
    {
        var second = User1000() with { Tid = 7, EffectiveUid = 0 };

        var excess = CredentialCheck.Excess([User1000(), second], Restricted()).ShouldHaveSingleItem();

        excess.ShouldStartWith("thread 7 of pid 1 (counter): uid 0 where the spec runs as 1000");
    }

    [Fact]
    public void Under_noNewPrivileges_permitted_beyond_the_spec_permitted_set_or_an_unrecorded_flag_is_refused()
    {
        var permitted = User1000() with { CapPermitted = 1UL << 10 };
        var spec = Grant("""{"process":{"user":{"uid":1000,"gid":3000},"noNewPrivileges":true,"capabilities":{"bounding":["CAP_NET_BIND_SERVICE"]}}}""");

        CredentialCheck.Excess([permitted], spec).ShouldHaveSingleItem().ShouldContain("permitted capabilities CAP_NET_BIND_SERVICE are not in the spec's permitted (noNewPrivileges) set");
        CredentialCheck.Excess([User1000() with { NoNewPrivileges = null }], spec).ShouldHaveSingleItem().ShouldContain("does not record no_new_privs");
    }

    [Fact]
    public void A_seal_without_threads_is_refused()
        => CredentialCheck.Excess([], RootWithDefaults()).ShouldHaveSingleItem().ShouldContain("records no checkpointed thread");
}
