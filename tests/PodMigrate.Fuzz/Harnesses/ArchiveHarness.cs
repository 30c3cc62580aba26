using System.Buffers.Binary;
using System.Runtime.InteropServices;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;

namespace PodMigrate.Fuzz.Harnesses;

/// <summary>
/// The checkpoint archive reader on untrusted bytes, extracting into a sandbox. Input layout: byte 0 picks the mode
/// (its low 2 bits: 0 raw tar, 1 gzip, 2 zstd, all three extracted without a manifest; 3 = verified: bytes 1-2 are the
/// manifest's length, little endian, then the manifest JSON, then the blob in the manifest's codec).
/// A bug is: any exception but a <see cref="PodMigrateException"/> of an expected kind; anything written outside the
/// target; a symlink in the result that resolves outside it; an entry that is not a directory, file or symlink, or
/// with a mode other than 0700/0600; anything left behind when extraction failed.
/// </summary>
public static class ArchiveHarness
{
    private static readonly ErrorKind[] ExpectedKinds =
        [ErrorKind.DataLoss, ErrorKind.InvalidArgument, ErrorKind.FailedPrecondition, ErrorKind.ResourceExhausted];

    public static void Run(ReadOnlySpan<byte> input, string scratch)
    {
        // A verified input needs the two length bytes; shorter ones reach no reader code.
        if (input.Length == 0 || ((input[0] & 3) == 3 && input.Length < 3))
        {
            return;
        }

        // scratch/a/b/target: an escape by one or two levels lands in a directory that is checked to stay as it was.
        var outer = Path.Combine(scratch, "a", "b");
        var target = Path.Combine(outer, "target");
        ResetSandbox(scratch, outer);

        var mode = input[0] & 3;
        var blob = input[1..].ToArray();
        try
        {
            Extract(mode, blob, target);
        }
        catch (PodMigrateException e) when (Array.IndexOf(ExpectedKinds, e.Kind) >= 0)
        {
            CheckSandbox(scratch, outer, target, extracted: false);
            return;
        }

        CheckSandbox(scratch, outer, target, extracted: true);
        CheckTree(target, target);
    }

    private static void Extract(int mode, byte[] data, string target)
    {
        if (mode < 3)
        {
            var codec = new CodecSettings(mode switch { 0 => CheckpointCodecs.NoneName, 1 => CheckpointCodecs.GzipName, _ => CheckpointCodecs.ZstdName }, 1);
            using var blob = new MemoryStream(data, writable: false);
            CheckpointArchiveReader.ExtractUnverifiedAsync(blob, codec, "fuzz", target, CancellationToken.None).GetAwaiter().GetResult();
            return;
        }

        var length = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(data), data.Length - 2);
        var manifest = ArchiveJson.DeserializeManifest(data.AsSpan(2, length), "fuzz manifest");
        using var stream = new MemoryStream(data, 2 + length, data.Length - 2 - length, writable: false);
        CheckpointArchiveReader.ExtractAsync(stream, manifest, target, CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>Builds the input for a verified extraction (mode 3) from a manifest and its blob.</summary>
    public static byte[] VerifiedInput(byte[] manifestJson, byte[] blob)
    {
        ArgumentNullException.ThrowIfNull(manifestJson);
        ArgumentNullException.ThrowIfNull(blob);
        var input = new byte[3 + manifestJson.Length + blob.Length];
        input[0] = 3;
        BinaryPrimitives.WriteUInt16LittleEndian(input.AsSpan(1), checked((ushort)manifestJson.Length));
        manifestJson.CopyTo(input, 3);
        blob.CopyTo(input, 3 + manifestJson.Length);
        return input;
    }

    private static void ResetSandbox(string scratch, string outer)
    {
        if (Directory.Exists(scratch))
        {
            Directory.Delete(scratch, recursive: true);
        }

        Directory.CreateDirectory(outer);
    }

    private static void CheckSandbox(string scratch, string outer, string target, bool extracted)
    {
        Expect(Names(scratch), ["a"], scratch);
        Expect(Names(Path.Combine(scratch, "a")), ["b"], Path.Combine(scratch, "a"));
        // The reader creates an absent target and removes it again when extraction fails.
        Expect(Names(outer), extracted ? ["target"] : [], outer);
        if (extracted && FileKinds.Of(target) != FileKind.Directory)
        {
            throw new FuzzFindingException($"the extraction target {target} is not a directory after success");
        }
    }

    private static void CheckTree(string root, string directory)
    {
        foreach (var path in Directory.EnumerateFileSystemEntries(directory))
        {
            switch (FileKinds.Of(path))
            {
                case FileKind.Directory:
                    ExpectMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                    CheckTree(root, path);
                    break;
                case FileKind.Regular:
                    ExpectMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                    break;
                case FileKind.Symlink:
                    CheckLink(root, path);
                    break;
                case var other:
                    throw new FuzzFindingException($"extraction made a {other}: {path}");
            }
        }
    }

    /// <summary>Resolves a link as the kernel does (symlinks before ".."): the longest prefix that exists must be inside the root.</summary>
    private static void CheckLink(string root, string link)
    {
        var text = new FileInfo(link).LinkTarget ?? "";
        var candidate = Path.Join(Path.GetDirectoryName(link), text);
        while (true)
        {
            if (RealPath(candidate) is { } resolved)
            {
                if (resolved != root && !resolved.StartsWith(root + "/", StringComparison.Ordinal))
                {
                    throw new FuzzFindingException($"symlink {link} -> \"{text}\" resolves to {resolved}, outside {root}");
                }

                return;
            }

            var slash = candidate.LastIndexOf('/');
            if (slash <= 0)
            {
                return;
            }

            candidate = candidate[..slash];
        }
    }

    private static void ExpectMode(string path, UnixFileMode expected)
    {
        var mode = File.GetUnixFileMode(path);
        if (mode != expected)
        {
            throw new FuzzFindingException($"{path} has mode {mode}, expected {expected}");
        }
    }

    private static string[] Names(string directory)
    {
        var names = Directory.Exists(directory) ? Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).ToArray() : [];
        Array.Sort(names, StringComparer.Ordinal);
        return names!;
    }

    private static void Expect(string[] actual, string[] expected, string where)
    {
        if (!actual.SequenceEqual(expected, StringComparer.Ordinal))
        {
            throw new FuzzFindingException($"{where} holds [{string.Join(", ", actual)}], expected [{string.Join(", ", expected)}]: something was written outside the target or left behind");
        }
    }

    private static string? RealPath(string path)
    {
        var resolved = NativeMethods.realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            NativeMethods.free(resolved);
        }
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true)]
#pragma warning disable CA2101, SYSLIB1054 // UTF-8 marshalling is explicit; a classic DllImport keeps this file free of source generators.
        internal static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);
#pragma warning restore CA2101, SYSLIB1054

        [DllImport("libc")]
#pragma warning disable SYSLIB1054
        internal static extern void free(IntPtr pointer);
#pragma warning restore SYSLIB1054
    }
}
