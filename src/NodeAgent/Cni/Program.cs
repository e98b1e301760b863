using Mesh.NodeAgent.Cni;

// mesh-cni: the CNI 1.0 plugin that attaches a Kubernetes pod to its node and hands it to the node's mesh-agent.
// A container runtime runs it once per operation, with the environment and stdin the CNI spec defines.
return await CniPlugin.RunAsync(Environment.GetEnvironmentVariables(), Console.OpenStandardInput(), Console.Out);
