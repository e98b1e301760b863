namespace Mesh.NodeAgent.Datapath;

//  Idle ──Apply(V+1)──► FillingStandby ──standby holds V+1──► Flipped ──no program reads V──► CatchingUpOld ──► Idle
//                          │ write error                        │ attach error                │ write error: the old
//                          ▼                                    ▼                             │ generation is marked
//                        Failed: V keeps enforcing;           Failed: flipped back to V (if   │ unknown and rebuilt in
//                        standby marked unknown ──► Idle      these maps hold one) ──► Idle   ▼ full next time ──► Idle
//  Packets see V or V+1, never a mix: each reads the generation once (gen_load) and every versioned key holds it.

/// <summary>The steps of one apply, in the order the diagram above allows.</summary>
internal enum GenerationPhase { Idle, FillingStandby, Flipped, CatchingUpOld, Failed }

/// <summary>Enforces the apply lifecycle drawn above: an out-of-order step is a bug in the datapath, not bad input.</summary>
internal sealed class GenerationLifecycle
{
    public GenerationPhase Phase { get; private set; } = GenerationPhase.Idle;

    public void To(GenerationPhase next)
    {
        if (!IsAllowed(Phase, next)) throw new InvalidOperationException($"illegal datapath transition {Phase} → {next}");
        Phase = next;
    }

    private static bool IsAllowed(GenerationPhase from, GenerationPhase to) => (from, to) switch
    {
        (GenerationPhase.Idle, GenerationPhase.FillingStandby) => true,
        (GenerationPhase.FillingStandby, GenerationPhase.Flipped or GenerationPhase.Failed) => true,
        (GenerationPhase.Flipped, GenerationPhase.CatchingUpOld or GenerationPhase.Failed) => true,
        (GenerationPhase.CatchingUpOld, GenerationPhase.Idle) => true,
        (GenerationPhase.Failed, GenerationPhase.Idle) => true,
        _ => false,
    };
}
