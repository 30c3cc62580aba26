using Google.Protobuf;
using PodMigrate.Core.Errors;
using Api = Containerd.Services.Tasks.V1;
using Mount = Containerd.Types.Mount;
using Process = Containerd.V1.Types.Process;
using Runc = Containerd.Runc.V1;
using TaskStatus = Containerd.V1.Types.Status;
using Any = Google.Protobuf.WellKnownTypes.Any;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>A task's state in PodMigrate's words; containerd's protobuf enum stays inside <see cref="ContainerdTasks"/>.</summary>
public enum TaskState
{
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

/// <summary>A container's task as containerd reports it: its process id and state.</summary>
public sealed record TaskInfo(string ContainerId, uint Pid, TaskState State);

/// <summary>Where a task's stdio goes: paths of fifos, or <c>file:///path</c> / <c>binary://</c> URIs; empty = /dev/null.</summary>
public sealed record TaskIo(string Stdin = "", string Stdout = "", string Stderr = "")
{
    public static TaskIo Null { get; } = new();

    /// <summary>stdout and stderr appended to one host file (the shim opens it).</summary>
    public static TaskIo ToFile(string path) => new("", new Uri(path).AbsoluteUri, new Uri(path).AbsoluteUri);
}

/// <summary>runc's checkpoint options (containerd.runc.v1.CheckpointOptions).</summary>
/// <param name="ImagePath">Where CRIU writes the images; must be a fresh, empty directory (CRIU mixes files into a used one). Set = nothing goes to the content store.</param>
/// <param name="WorkPath">Where CRIU writes dump.log and stats-dump.</param>
/// <param name="Exit">Stop the task after the dump (a migration) instead of leaving it running (a snapshot).</param>
public sealed record TaskCheckpointOptions(
    string ImagePath,
    string WorkPath,
    bool Exit = false,
    bool OpenTcp = false,
    bool ExternalUnixSockets = false,
    bool Terminal = false,
    bool FileLocks = true,
    IReadOnlyList<string>? EmptyNamespaces = null,
    string? CgroupsMode = null,
    TimeSpan? Timeout = null);

/// <summary>Restoring a task from CRIU images on disk instead of starting it fresh.</summary>
/// <param name="RuntimeOptions">The container's runc options to carry over: task options replace them, they are not merged.</param>
public sealed record TaskRestoreOptions(string CriuImagePath, string CriuWorkPath, Runc.Options? RuntimeOptions = null, TimeSpan? Timeout = null);

public sealed record TaskExit(uint ExitStatus, DateTimeOffset? ExitedAt);

/// <summary>Tasks: the running processes of containers (create, start, signal, wait, delete, checkpoint, restore).</summary>
public sealed class ContainerdTasks(ContainerdConnection connection)
{
    private readonly Api.Tasks.TasksClient _tasks = new(connection.Invoker);

    /// <summary>Creates the task (runc create: the process exists but has not run yet); returns its host pid.</summary>
    public async Task<uint> CreateAsync(string containerId, IEnumerable<Mount> rootfs, TaskIo io, CancellationToken cancellationToken)
    {
        var request = CreateRequest(containerId, rootfs, io);
        var response = await connection.UnaryAsync(o => _tasks.CreateAsync(request, o), new ContainerdCall($"creating task {containerId}"), cancellationToken);
        return response.Pid;
    }

    /// <summary>
    /// Restores a task from CRIU images (Tasks.Create with runc's criu_image_path, then Tasks.Start, which runs
    /// <c>runc restore</c>); returns the restored process's host pid. The rootfs must already hold the files the
    /// process had open (same snapshot, or a new one with the old upper layer applied).
    /// </summary>
    public async Task<uint> RestoreAsync(string containerId, IEnumerable<Mount> rootfs, TaskIo io, TaskRestoreOptions restore, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(restore);
        var request = CreateRequest(containerId, rootfs, io);
        var options = restore.RuntimeOptions?.Clone() ?? new Runc.Options();
        options.CriuImagePath = restore.CriuImagePath;
        options.CriuWorkPath = restore.CriuWorkPath;
        request.Options = BareAny(options);
        // Create only records the checkpoint (pid 0); the CRIU restore itself happens in Start.
        await connection.UnaryAsync(o => _tasks.CreateAsync(request, o), new ContainerdCall($"creating task {containerId} for a restore from {restore.CriuImagePath}"), cancellationToken);
        return await StartCoreAsync(containerId, $"restoring task {containerId} from {restore.CriuImagePath}", restore.Timeout ?? TimeSpan.FromMinutes(5), cancellationToken);
    }

    public Task<uint> StartAsync(string containerId, CancellationToken cancellationToken)
        => StartCoreAsync(containerId, $"starting task {containerId}", timeout: null, cancellationToken);

    public async Task<TaskInfo> GetAsync(string containerId, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _tasks.GetAsync(new Api.GetRequest { ContainerId = containerId }, o), new ContainerdCall($"getting task {containerId}"), cancellationToken);
        return ToInfo(response.Process);
    }

    public async Task<IReadOnlyList<TaskInfo>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _tasks.ListAsync(new Api.ListTasksRequest(), o), new ContainerdCall("listing tasks"), cancellationToken);
        return [.. response.Tasks.Select(ToInfo)];
    }

    private static TaskInfo ToInfo(Process process) => new(process.Id, process.Pid, process.Status switch
    {
        TaskStatus.Created => TaskState.Created,
        TaskStatus.Running => TaskState.Running,
        TaskStatus.Stopped => TaskState.Stopped,
        TaskStatus.Paused => TaskState.Paused,
        TaskStatus.Pausing => TaskState.Pausing,
        _ => TaskState.Unknown,
    });

    public async Task PauseAsync(string containerId, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _tasks.PauseAsync(new Api.PauseTaskRequest { ContainerId = containerId }, o),
            new ContainerdCall($"pausing task {containerId}", ClassifyUnknown: NotInState(containerId, TaskState.Running)), cancellationToken);

    public async Task ResumeAsync(string containerId, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _tasks.ResumeAsync(new Api.ResumeTaskRequest { ContainerId = containerId }, o),
            new ContainerdCall($"resuming task {containerId}", ClassifyUnknown: NotInState(containerId, TaskState.Paused)), cancellationToken);

    /// <summary>Sends <paramref name="signal"/> to the task's init process, or to every process in it with <paramref name="all"/>.</summary>
    public async Task KillAsync(string containerId, int signal, bool all, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _tasks.KillAsync(new Api.KillRequest { ContainerId = containerId, Signal = (uint)signal, All = all }, o),
            new ContainerdCall($"signalling task {containerId} with {signal}"), cancellationToken);

    /// <summary>Waits for the task to exit; <paramref name="timeout"/> null = until the token fires.</summary>
    public async Task<TaskExit> WaitAsync(string containerId, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _tasks.WaitAsync(new Api.WaitRequest { ContainerId = containerId }, o),
            new ContainerdCall($"waiting for task {containerId}", timeout ?? Timeout.InfiniteTimeSpan), cancellationToken);
        return new TaskExit(response.ExitStatus, response.ExitedAt?.ToDateTimeOffset());
    }

    /// <summary>Deletes a stopped task (FailedPrecondition while it runs).</summary>
    public async Task<TaskExit> DeleteAsync(string containerId, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _tasks.DeleteAsync(new Api.DeleteTaskRequest { ContainerId = containerId }, o),
            new ContainerdCall($"deleting task {containerId}", ClassifyUnknown: NotInState(containerId, TaskState.Stopped, TaskState.Created)), cancellationToken);
        return new TaskExit(response.ExitStatus, response.ExitedAt?.ToDateTimeOffset());
    }

    /// <summary>
    /// Dumps the task with CRIU into <see cref="TaskCheckpointOptions.ImagePath"/> (nothing goes to the content store).
    /// A task that is not running or paused is FailedPrecondition; a CRIU failure is Internal with containerd's message.
    /// </summary>
    public async Task CheckpointAsync(string containerId, TaskCheckpointOptions checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentException.ThrowIfNullOrEmpty(checkpoint.ImagePath);
        var status = (await GetAsync(containerId, cancellationToken)).State;
        if (status is not (TaskState.Running or TaskState.Paused))
        {
            throw PodMigrateException.FailedPrecondition($"checkpointing task {containerId}: the task is {status}, not running");
        }
        var options = new Runc.CheckpointOptions
        {
            Exit = checkpoint.Exit,
            OpenTcp = checkpoint.OpenTcp,
            ExternalUnixSockets = checkpoint.ExternalUnixSockets,
            Terminal = checkpoint.Terminal,
            FileLocks = checkpoint.FileLocks,
            CgroupsMode = checkpoint.CgroupsMode ?? "",
            ImagePath = checkpoint.ImagePath,
            WorkPath = checkpoint.WorkPath,
        };
        options.EmptyNamespaces.Add(checkpoint.EmptyNamespaces ?? []);
        var request = new Api.CheckpointTaskRequest { ContainerId = containerId, Options = BareAny(options) };
        var call = new ContainerdCall($"checkpointing task {containerId} into {checkpoint.ImagePath}", checkpoint.Timeout ?? TimeSpan.FromMinutes(5),
            NotInState(containerId, TaskState.Running, TaskState.Paused));
        await connection.UnaryAsync(o => _tasks.CheckpointAsync(request, o), call, cancellationToken);
    }

    /// <summary>
    /// Stops and deletes the task if there is one: SIGKILL to all its processes, wait, delete. For cleanup paths;
    /// returns false when there was no task.
    /// </summary>
    public async Task<bool> KillAndDeleteAsync(string containerId, CancellationToken cancellationToken)
    {
        TaskInfo task;
        try
        {
            task = await GetAsync(containerId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
        if (task.State is not (TaskState.Stopped or TaskState.Created))
        {
            if (task.State == TaskState.Paused)
            {
                await ResumeAsync(containerId, cancellationToken);
            }
            try
            {
                await KillAsync(containerId, 9, all: true, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                // exited between Get and Kill
            }
            await WaitAsync(containerId, TimeSpan.FromSeconds(30), cancellationToken);
        }
        await DeleteAsync(containerId, cancellationToken);
        return true;
    }

    private async Task<uint> StartCoreAsync(string containerId, string doing, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _tasks.StartAsync(new Api.StartRequest { ContainerId = containerId }, o),
            new ContainerdCall(doing, timeout, NotInState(containerId, TaskState.Created)), cancellationToken);
        return response.Pid;
    }

    private static Api.CreateTaskRequest CreateRequest(string containerId, IEnumerable<Mount> rootfs, TaskIo io)
    {
        ArgumentException.ThrowIfNullOrEmpty(containerId);
        ArgumentNullException.ThrowIfNull(rootfs);
        ArgumentNullException.ThrowIfNull(io);
        var request = new Api.CreateTaskRequest { ContainerId = containerId, Stdin = io.Stdin, Stdout = io.Stdout, Stderr = io.Stderr };
        request.Rootfs.Add(rootfs);
        return request;
    }

    /// <summary>
    /// Classifies containerd's Unknown answers by the task's state: when the task is not in one of the states the
    /// call needs (e.g. "cannot delete a running process"), the caller asked at the wrong time (FailedPrecondition);
    /// otherwise the runtime really failed (Internal).
    /// </summary>
    private Func<CancellationToken, Task<ErrorKind>> NotInState(string containerId, params TaskState[] required) => async ct =>
    {
        try
        {
            var status = (await GetAsync(containerId, ct)).State;
            return required.Contains(status) ? ErrorKind.Internal : ErrorKind.FailedPrecondition;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return ErrorKind.NotFound;
        }
    };

    /// <summary>runc's shim matches option type URLs exactly, and only the bare message name (no "type.googleapis.com/").</summary>
    private static Any BareAny(IMessage message) => new() { TypeUrl = message.Descriptor.FullName, Value = message.ToByteString() };
}
