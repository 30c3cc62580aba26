using PodMigrate.Agent.V1;

namespace PodMigrate.Controller.Agents;

// PLACEHOLDER until the agent-mtls branch lands (its IAgentDirectory replaces this file).
public interface IAgentDirectory
{
    ValueTask<AgentClient> GetAsync(string nodeName, CancellationToken cancellationToken);
}
