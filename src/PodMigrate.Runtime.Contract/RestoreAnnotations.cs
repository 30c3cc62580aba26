namespace PodMigrate.Runtime.Contract;

/// <summary>
/// Annotations that reach the OCI spec of a clone pod's containers. The pod ones pass because the runtime handler's
/// <c>pod_annotations</c> lists <c>podmigrate.io/*</c>; the CRI ones are set by containerd / CRI-O themselves.
/// </summary>
public static class RestoreAnnotations
{
    /// <summary>Pod annotation: the id of the checkpoint this node's agent prepared for this pod.</summary>
    public const string Checkpoint = "podmigrate.io/restore-checkpoint";

    /// <summary>Pod annotation: the container the checkpoint restores into (the pod's only container when absent).</summary>
    public const string Container = "podmigrate.io/restore-container";

    /// <summary>
    /// Pod annotation: how the restored process gets its memory back. <see cref="PagesLazy"/>: post-copy, the process runs
    /// as soon as everything but its memory is restored, and CRIU's lazy-pages daemon fills its pages from the prepared
    /// staging through userfaultfd; <see cref="PagesEager"/> (also when absent): every page is written before it runs.
    /// </summary>
    public const string Pages = "podmigrate.io/restore-pages";

    public const string PagesLazy = "lazy";
    public const string PagesEager = "eager";

    /// <summary>CRI: "sandbox" for the pod's pause container, "container" for the others.</summary>
    public const string CriContainerType = "io.kubernetes.cri.container-type";

    public const string CriContainerName = "io.kubernetes.cri.container-name";
    public const string CriSandboxName = "io.kubernetes.cri.sandbox-name";
    public const string CriSandboxNamespace = "io.kubernetes.cri.sandbox-namespace";
    public const string CriSandboxUid = "io.kubernetes.cri.sandbox-uid";

    /// <summary>Kubelet container annotation (passed through with the handler's <c>container_annotations</c>).</summary>
    public const string RestartCount = "io.kubernetes.container.restartCount";
}
