namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// A checkpoint being written into a temporary directory next to the job's step directories. Its parts are written
/// through <see cref="Ticket"/>, concurrently if need be (each part is its own file); <see cref="Commit"/> writes the
/// manifest and publishes the directory with one rename. Disposing it uncommitted removes the temporary directory;
/// a crash leaves it behind, ignored by readers and removed by the job's next <see cref="CheckpointStore.Begin"/>.
/// </summary>
public sealed class PendingCheckpoint : IDisposable
{
    readonly CheckpointStore store;
    public CheckpointTicket Ticket { get; }
    bool finished;

    internal PendingCheckpoint(CheckpointStore store, CheckpointTicket ticket)
    {
        this.store = store;
        Ticket = ticket;
    }

    /// <summary>The temporary directory the files go to.</summary>
    public string Directory => Ticket.Directory;

    public ShardFile WriteTowers(ShardState towers) => Ticket.WriteTowers(towers);

    public CheckpointFile WriteTrunk(ShardState trunk) => Ticket.WriteTrunk(trunk);

    /// <summary>Writes the manifest, fsyncs the directory and publishes it as step-{Step}; the files must all be written.</summary>
    public CheckpointManifest Commit(CheckpointFile trunk, IEnumerable<ShardFile> shards, ValidationRecord? validation = null)
    {
        ObjectDisposedException.ThrowIf(finished, this);
        string path = Path.Combine(Directory, CheckpointManifest.FileName);
        var manifest = Validated(new CheckpointManifest
        {
            Job = Ticket.Job,
            Step = Ticket.Step,
            OptimizerStep = Ticket.OptimizerStep,
            DType = Ticket.Job.DType,
            CreatedUtc = DateTimeOffset.UtcNow,
            Trunk = trunk,
            Shards = [.. shards.OrderBy(s => s.FirstGroup)],
            Validation = validation,
        }, path);
        // The files may come from other processes: what is on disk must be what they reported.
        foreach (var file in manifest.Shards.Select(s => s.Content).Prepend(manifest.Trunk))
            if (CheckpointFile.Of(Path.Combine(Directory, file.File)) != file)
                throw new InvalidOperationException($"'{file.File}' in '{Directory}' is not the file that was written.");
        DurableFiles.Create(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(manifest.ToJson())));
        DurableFiles.SyncDirectory(Directory);
        store.Publish(Ticket);
        finished = true;
        return manifest;
    }

    /// <summary>A manifest the caller got wrong (a group missing, a bad file name) is its mistake, not bad data.</summary>
    static CheckpointManifest Validated(CheckpointManifest manifest, string path)
    {
        try { return manifest.Validate(path); }
        catch (InvalidDataException e) { throw new ArgumentException(e.Message, e); }
    }

    /// <summary>Abandons an uncommitted checkpoint: its temporary directory goes, nothing published is touched.</summary>
    public void Dispose()
    {
        if (finished) return;
        finished = true;
        store.Abandon(Directory);
    }
}
