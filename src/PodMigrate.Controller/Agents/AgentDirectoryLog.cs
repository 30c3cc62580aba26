using Microsoft.Extensions.Logging;

namespace PodMigrate.Controller.Agents;

/// <summary>The agent directory's log events, with stable ids (5100-5199).</summary>
internal static partial class AgentDirectoryLog
{
    [LoggerMessage(5101, LogLevel.Information, "Agent client for node {NodeName}: {Endpoint} ({CredentialsSource})")]
    public static partial void ClientCreated(ILogger logger, string nodeName, string endpoint, string credentialsSource);

    [LoggerMessage(5102, LogLevel.Information, "Agent client for node {NodeName} replaced: {OldEndpoint} -> {NewEndpoint} ({CredentialsSource})")]
    public static partial void ClientReplaced(ILogger logger, string nodeName, string oldEndpoint, string newEndpoint, string credentialsSource);

    [LoggerMessage(5103, LogLevel.Information, "Agent credentials loaded from {Source}")]
    public static partial void CredentialsLoaded(ILogger logger, string source);

    [LoggerMessage(5104, LogLevel.Warning, "Agent credentials could not be read again from {Source}; the loaded ones stay in use: {Reason}")]
    public static partial void CredentialsRefreshFailed(ILogger logger, string source, string reason);
}
