using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Which file rows each batch reads, the same rule for every file source: the rows trained on, [0, T), are cut into
/// consecutive blocks (a Parquet file's row groups; a safetensors file is one block). Epoch e visits the blocks in a
/// permutation seeded by (DataSeed, e) and the rows of block b in a permutation seeded by (DataSeed, e, b); batch i
/// takes positions [i*B, (i+1)*B) of the concatenated epochs. So batch i depends only on (seed, i) and the block
/// sizes, never on what was read before, and a batch touches one block or two (more only when blocks are smaller
/// than a batch): a source that streams its blocks decodes few of them per batch.
/// </summary>
public sealed class ShuffledRows
{
    readonly long seed;
    readonly int batchSize;
    readonly long[] blockStarts;   // (blocks + 1): block b covers file rows [blockStarts[b], blockStarts[b + 1]); the last is T
    (long Epoch, long[] Blocks, long[] Offsets) epoch = (-1, [], []);   // the epoch's block order, and where each starts in it
    (long Epoch, int Block, long[] Rows) block = (-1, -1, []);          // the last block's row order (batches run through blocks in turn)

    /// <param name="blockRows">Rows of each block of the file, in file order.</param>
    /// <param name="trainRows">T: batches use rows [0, T) only, the leading blocks with the last one cut short.</param>
    public ShuffledRows(long seed, int batchSize, IEnumerable<long> blockRows, long trainRows)
    {
        this.seed = seed;
        this.batchSize = batchSize;
        var starts = new List<long> { 0 };
        foreach (long rows in blockRows)
        {
            long end = Math.Min(starts[^1] + rows, trainRows);
            if (end > starts[^1]) starts.Add(end);
        }
        blockStarts = [.. starts];
    }

    /// <summary>T: the rows batches are drawn from.</summary>
    public long Rows => blockStarts[^1];

    /// <summary>The B file rows of batch <paramref name="index"/>, in batch order.</summary>
    public long[] Batch(long index)
    {
        var rows = new long[batchSize];
        for (int k = 0; k < rows.Length; k++)
        {
            long position = index * batchSize + k;
            rows[k] = Row(position / Rows, position % Rows);
        }
        return rows;
    }

    /// <summary>
    /// T: <paramref name="trainRows"/>, or by default the rows the job's held-out fraction <paramref name="holdOut"/>
    /// leaves of the file's <paramref name="fileRows"/> (<see cref="HeldOutData.TrainRows"/>). Throws
    /// <see cref="InvalidDataException"/> naming <paramref name="path"/> unless that leaves at least one row to train on
    /// and no more than the file holds.
    /// </summary>
    public static long CheckTrainRows(long? trainRows, long fileRows, double holdOut, string path)
    {
        long rows = trainRows ?? HeldOutData.TrainRows(fileRows, holdOut, path);
        if (rows < 1 || rows > fileRows)
            throw new InvalidDataException($"{path}: the job trains on the first {rows} rows, but the file holds {fileRows}; it needs 1..{fileRows}.");
        return rows;
    }

    /// <summary>The block of <paramref name="starts"/> (ascending, the first 0) that holds <paramref name="value"/>.</summary>
    public static int Containing(long[] starts, long value)
    {
        int found = Array.BinarySearch(starts, value);
        return found >= 0 ? found : ~found - 1;
    }

    long Row(long epochIndex, long position)
    {
        var (blocks, offsets) = EpochOrder(epochIndex);
        int k = Containing(offsets, position);
        int b = (int)blocks[k];
        return blockStarts[b] + RowOrder(epochIndex, b)[position - offsets[k]];
    }

    (long[] Blocks, long[] Offsets) EpochOrder(long epochIndex)
    {
        if (epoch.Epoch != epochIndex)
        {
            var blocks = Permutation(blockStarts.Length - 1, GroupInit.StableSeed(seed, epochIndex, "shuffle-blocks"));
            var offsets = new long[blocks.Length];
            for (int k = 1; k < blocks.Length; k++) offsets[k] = offsets[k - 1] + BlockRows((int)blocks[k - 1]);
            epoch = (epochIndex, blocks, offsets);
        }
        return (epoch.Blocks, epoch.Offsets);
    }

    long[] RowOrder(long epochIndex, int b)
    {
        if (block.Epoch != epochIndex || block.Block != b)
            // Block 0 keeps the seed name a whole file's permutation had before files were cut into blocks: a safetensors
            // job (one block) resumed from an older checkpoint continues with the batches it would have had.
            block = (epochIndex, b, Permutation(BlockRows(b), GroupInit.StableSeed(seed, epochIndex, b == 0 ? "shuffle" : $"shuffle-rows-{b}")));
        return block.Rows;
    }

    long BlockRows(int b) => blockStarts[b + 1] - blockStarts[b];

    static long[] Permutation(long count, ulong generatorSeed)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(generatorSeed);
        return randperm(count, generator: generator).data<long>().ToArray();
    }
}
