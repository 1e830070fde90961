using Akka.Actor;

namespace Messaging.Actors;

/// <summary>
/// <see cref="Props"/> whose actor is made by a plain delegate. <c>Props.Create(() =&gt; new T(...))</c> takes the
/// expression tree apart and evaluates each constructor argument on its own: a constant or a captured variable by
/// reflection, anything else (a method call such as <c>registry.Get&lt;T&gt;()</c>, a <c>new</c>) by compiling a
/// delegate for it, which the JIT then compiles too. For an actor started once that is nothing; for a mailbox that
/// starts at every wake and a reader started per page it was most of a wake's CPU (docs/benchmarks.md, "Waking a
/// mailbox: the props"). Restarts call the delegate again, so it must make a new actor each time.
/// </summary>
public static class FactoryProps
{
    public static Props Of<TActor>(Func<TActor> factory) where TActor : ActorBase =>
        Props.CreateBy(new Producer<TActor>(factory));

    private sealed class Producer<TActor>(Func<TActor> factory) : IIndirectActorProducer where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => factory();

        public void Release(ActorBase actor)
        {
        }
    }
}
