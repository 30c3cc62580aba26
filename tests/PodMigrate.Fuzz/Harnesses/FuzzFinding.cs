namespace PodMigrate.Fuzz.Harnesses;

/// <summary>A harness's own check failed: the input showed a bug even though nothing threw on its own.</summary>
public sealed class FuzzFindingException(string message) : Exception(message)
{
    public FuzzFindingException()
        : this("fuzz finding")
    {
    }

    public FuzzFindingException(string message, Exception innerException)
        : this(message + ": " + innerException.Message)
    {
    }
}
