using Orchestrator.Training.Data;
using static Orchestrator.TestKit.ParquetFiles;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

public sealed class ParquetSourceTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    static readonly ModelShape Shape = new() { Groups = 3, Features = 5, Input = 4, Hidden = 6, Output = 2 };
    const int Samples = 53, BatchSize = 4;

    /// <summary>Fresh random samples: features (S, D_feat) and targets (S, N, D_out), float64.</summary>
    (Tensor Features, Tensor Targets) Data() => (
        check.Randn([Samples, Shape.Features], ScalarType.Float64),
        check.Randn([Samples, Shape.Groups, Shape.Output], ScalarType.Float64));

    JobSpec Job(string path) => new()
    {
        Shape = Shape, BatchSize = BatchSize, DType = ScalarType.Float64, Steps = 4,
        Data = new DataSpec { Source = DataSpec.SourceFor(path), Path = path, DataSeed = check.Seed },
    };

    /// <summary>The default layout: a "features" list column and a "targets" list column of N*D_out values.</summary>
    JobSpec WriteLists(Tensor features, Tensor targets, int rowGroupRows)
    {
        var path = scratch.NewFile(".parquet");
        Write(path, Samples, rowGroupRows,
            List(ParquetColumns.DefaultFeatures, Rows<double>(features)),
            List(ParquetColumns.DefaultTargets, Rows<double>(targets.reshape(Samples, -1))));
        return Job(path);
    }

    JobSpec WriteSafetensors(Tensor features, Tensor targets)
    {
        var path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features, [SafetensorsSource.TargetsName] = targets });
        return Job(path);
    }

    static void AssertSame(Batch expected, Batch actual, string what)
    {
        Assert.True(Same(expected.Features, actual.Features), $"{what}: features");
        Assert.True(Same(expected.Targets, actual.Targets), $"{what}: targets");
    }

    [Theory]
    [InlineData(null)]
    [InlineData(40L)]
    public void A_file_of_one_row_group_gives_the_batches_of_its_safetensors_copy(long? trainRows)
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        using var parquet = BatchSources.Create(WriteLists(features, targets, rowGroupRows: Samples), trainRows: trainRows);
        using var safetensors = BatchSources.Create(WriteSafetensors(features, targets), trainRows: trainRows);
        Assert.IsType<ParquetSource>(parquet);
        for (long i = 0; i < 3 * Samples / BatchSize; i++)   // three epochs
        {
            using var expected = safetensors.Get(i);
            using var actual = parquet.Get(i);
            AssertSame(expected, actual, $"batch {i}");
        }
        using var expectedRows = ((ISampleRows)safetensors).ReadRows(10, 40);
        using var actualRows = ((ISampleRows)parquet).ReadRows(10, 40);
        AssertSame(expectedRows, actualRows, "rows [10, 50)");
    }

    [Theory]
    [InlineData(true, null)]
    [InlineData(false, null)]
    [InlineData(true, 37L)]
    [InlineData(false, 37L)]
    public void Batches_are_the_rows_the_shuffled_order_names_and_touch_at_most_two_row_groups(bool streams, long? trainRows)
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        var spec = WriteLists(features, targets, rowGroupRows: 10);   // groups of 10, 10, 10, 10, 10, 3
        using var source = new ParquetSource(spec, trainRows: trainRows, wholeFileBytes: streams ? 0 : null);
        Assert.Equal(streams, source.Streams);
        long[] groupRows = [10, 10, 10, 10, 10, 3];
        var order = new ShuffledRows(spec.Data.DataSeed, BatchSize, groupRows, trainRows ?? Samples);
        var epoch = new List<long>();
        for (long i = 0; i < 30; i++)
        {
            var rows = order.Batch(i);
            using var batch = source.Get(i);
            var picked = tensor(rows);
            Assert.True(Same(features.index_select(0, picked), batch.Features), $"batch {i}: features");
            Assert.True(Same(targets.index_select(0, picked), batch.Targets), $"batch {i}: targets");
            Assert.True(rows.Select(r => r / 10).Distinct().Count() <= 2, $"batch {i} reads rows {string.Join(", ", rows)}");
            epoch.AddRange(rows);
        }
        long train = trainRows ?? Samples;
        Assert.Equal(Enumerable.Range(0, (int)train).Select(r => (long)r), epoch.Take((int)train).Order());   // an epoch visits each row once
        Assert.NotEqual(epoch.Take((int)train), epoch.Skip((int)train).Take((int)train));                  // epochs are shuffled differently
    }

    [Fact]
    public void Streaming_and_loading_whole_give_the_same_batches_and_rows()
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        var spec = WriteLists(features, targets, rowGroupRows: 7);
        using var streaming = new ParquetSource(spec, wholeFileBytes: 0);
        using var whole = new ParquetSource(spec);
        Assert.True(streaming.Streams);
        Assert.False(whole.Streams);
        foreach (long i in new long[] { 0, 1, 2, 13, 40, 3, 3, 27 })
        {
            using var expected = whole.Get(i);
            using var actual = streaming.Get(i);
            AssertSame(expected, actual, $"batch {i}");
        }
        foreach (var (start, count) in new (long, long)[] { (0, Samples), (5, 20), (49, 4), (14, 7), (53, 0) })
        {
            using var expected = whole.ReadRows(start, count);
            using var actual = streaming.ReadRows(start, count);
            AssertSame(expected, actual, $"rows [{start}, {start + count})");
            Assert.True(Same(features.narrow(0, start, count), actual.Features), $"rows [{start}, {start + count}) in file order");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => streaming.ReadRows(50, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => whole.ReadRows(-1, 2));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Batch_i_is_the_same_whichever_batches_were_read_before(bool streams)
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        var spec = WriteLists(features, targets, rowGroupRows: 6);
        using var warm = new ParquetSource(spec, wholeFileBytes: streams ? 0 : null);
        for (long i = 0; i < 10; i++) warm.Get(i).Dispose();
        using var afterOthers = warm.Get(5);
        using var fresh = new ParquetSource(spec, wholeFileBytes: streams ? 0 : null);
        using var first = fresh.Get(5);
        AssertSame(first, afterOthers, "batch 5");
    }

    [Theory]
    [InlineData("parquet-streaming")]
    [InlineData("parquet-whole")]
    [InlineData("safetensors")]
    public void No_batch_ever_holds_a_held_out_row(string kind)
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        const long train = 41;   // rows 41..52 are held out
        using IBatchSource source = kind switch
        {
            "safetensors" => new SafetensorsSource(WriteSafetensors(features, targets), trainRows: train),
            _ => new ParquetSource(WriteLists(features, targets, rowGroupRows: 8), trainRows: train, wholeFileBytes: kind == "parquet-streaming" ? 0 : null),
        };
        var seen = cat(Enumerable.Range(0, 4 * Samples / BatchSize).Select(i => source.Get(i).Features).ToArray());   // (M, D_feat), four epochs
        var match = seen.unsqueeze(1).eq(features.unsqueeze(0)).all(2);   // (M, S): which file row each batch row is
        Assert.True(match.sum(1).eq(1).all().item<bool>(), "every batch row is exactly one file row");
        var rows = match.to(ScalarType.Int64).argmax(1).data<long>().ToArray();
        Assert.All(rows, r => Assert.True(r < train, $"held-out row {r} was in a batch"));
        Assert.Equal(train, rows.Distinct().Count());   // and every trained row was
        Assert.Equal(Samples, ((ISampleRows)source).Rows);
    }

    public static TheoryData<string> Layouts => ["scalars", "per-group lists", "mixed", "optional, as pandas writes"];

    [Theory, MemberData(nameof(Layouts))]
    public void Scalar_and_list_column_layouts_give_the_same_samples(string layout)
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        var flatTargets = targets.reshape(Samples, -1);   // (S, N*D_out), group-major
        var f = Enumerable.Range(0, Shape.Features).Select(k => Scalar($"f{k}", ColumnOf<double>(features, k))).ToArray();
        Column[] columns = layout switch
        {
            "scalars" => [.. f, .. Enumerable.Range(0, Shape.Groups * Shape.Output).Select(k => Scalar($"t{k}", ColumnOf<double>(flatTargets, k)))],
            "per-group lists" => [.. f, .. Enumerable.Range(0, Shape.Groups).Select(g => List($"group{g}", Rows<double>(targets.select(1, g))))],
            "mixed" => [f[0], List("rest", Rows<double>(features.narrow(1, 1, Shape.Features - 1))), List("targets", Rows<double>(flatTargets))],
            _ =>
            [
                .. Enumerable.Range(0, Shape.Features).Select(k => Nullable($"f{k}", ColumnOf<double>(features, k).Select(v => (double?)v).ToArray())),
                List("targets", Rows<double>(flatTargets), optionalElements: true),
            ],
        };
        var path = scratch.NewFile(".parquet");
        Write(path, Samples, 11, columns);
        var names = new ParquetColumns
        {
            Features = layout == "mixed" ? ["f0", "rest"] : [.. Enumerable.Range(0, Shape.Features).Select(k => $"f{k}")],
            Targets = layout switch
            {
                "scalars" => [.. Enumerable.Range(0, Shape.Groups * Shape.Output).Select(k => $"t{k}")],
                "per-group lists" => [.. Enumerable.Range(0, Shape.Groups).Select(g => $"group{g}")],
                _ => [ParquetColumns.DefaultTargets],
            },
        };
        var spec = Job(path) with { Data = Job(path).Data with { Columns = names } };
        using var source = new ParquetSource(spec.Validate());
        using var all = source.ReadRows(0, Samples);
        Assert.True(Same(features, all.Features), "features");
        Assert.True(Same(targets, all.Targets), "targets");
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Float_and_int_columns_convert_to_the_job_dtype(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var features = check.Randn([Samples, Shape.Features], ScalarType.Float32);
        var targets = randint(1, 1000, [Samples, Shape.Groups * Shape.Output], ScalarType.Int32);   // never zero
        var path = scratch.NewFile(".parquet");
        Write(path, Samples, 20, List("features", Rows<float>(features)), List("targets", Rows<int>(targets)));
        using var source = new ParquetSource(Job(path) with { DType = dtype });
        using var all = source.ReadRows(0, Samples);
        Assert.True(Same(features.to(dtype), all.Features), "float32 features");
        Assert.True(Same(targets.to(dtype).reshape(Samples, Shape.Groups, Shape.Output), all.Targets), "int32 targets");
    }

    public static TheoryData<string, string> BadColumns => new()
    {
        { "missing", "no column named 'targets' (Data.Columns.Targets); the file has: features, labels" },
        { "strings", "column 'targets' holds string values; columns must hold double, float, int32, int64 numbers" },
        { "null", "column 'targets' has no value in row 45 (a null, or a null or empty list)" },
        { "null in a list", "column 'targets' has no value in row 31 (a null, or a null or empty list)" },
        { "short list", "column 'features' holds a list of 4 values in row 50, but every row's list must hold 5" },
        { "scalar count", "Data.Columns.Targets names 5 scalar and 0 list columns (t0, t1, t2, t3, t4), which cannot give the Shape.Groups × Shape.Output = 3 × 2 values" },
    };

    [Theory, MemberData(nameof(BadColumns))]
    public void A_bad_column_is_named_with_the_file_when_the_source_is_created(string damage, string problem)
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        var featureRows = Rows<double>(features);
        var flatTargets = targets.reshape(Samples, -1);
        var path = scratch.NewFile(".parquet");
        var spec = Job(path);
        switch (damage)
        {
            case "missing":
                Write(path, Samples, 10, List("features", featureRows), List("labels", Rows<double>(flatTargets)));
                break;
            case "strings":
                Write(path, Samples, 10, List("features", featureRows), Strings("targets", [.. Enumerable.Range(0, Samples).Select(r => $"row {r}")]));
                break;
            case "null":
                var values = ColumnOf<double>(flatTargets, 0).Select(v => (double?)v).ToArray();
                values[45] = null;   // in the fifth row group: found when the source is created, even streaming
                spec = spec with { Data = spec.Data with { Columns = new ParquetColumns { Targets = ["targets", "rest"] } } };
                Write(path, Samples, 10, List("features", featureRows), Nullable("targets", values),
                    List("rest", Rows<double>(flatTargets.narrow(1, 1, 5))));
                break;
            case "null in a list":
                Write(path, Samples, 10, List("features", featureRows), List("targets", Rows<double>(flatTargets), optionalElements: true, nullAt: (31, 4)));
                break;
            case "short list":
                featureRows[50] = featureRows[50][..4];
                Write(path, Samples, 10, List("features", featureRows), List("targets", Rows<double>(flatTargets)));
                break;
            default:
                spec = spec with { Data = spec.Data with { Columns = new ParquetColumns { Targets = [.. Enumerable.Range(0, 5).Select(k => $"t{k}")] } } };
                Write(path, Samples, 10, [List("features", featureRows), .. Enumerable.Range(0, 5).Select(k => Scalar($"t{k}", ColumnOf<double>(flatTargets, k)))]);
                break;
        }
        foreach (long? budget in new long?[] { 0, null })   // streaming and whole
        {
            var e = Assert.Throws<InvalidDataException>(() => new ParquetSource(spec, wholeFileBytes: budget));
            Assert.Contains(path, e.Message);
            Assert.Contains(problem, e.Message);
        }
    }

    [Fact]
    public void A_file_that_is_not_parquet_or_is_empty_and_train_rows_beyond_the_file_are_refused()
    {
        var path = scratch.NewFile(".parquet");
        File.WriteAllText(path, "features,targets\n1,2\n");
        var e = Assert.Throws<InvalidDataException>(() => BatchSources.Create(Job(path)));
        Assert.Contains($"{path}: not a readable Parquet file", e.Message);
        var empty = scratch.NewFile(".parquet");
        Write(empty, 0, 10, List("features", Array.Empty<double[]>()), List("targets", Array.Empty<double[]>()));
        Assert.Contains($"{empty}: the file holds no samples", Assert.Throws<InvalidDataException>(() => BatchSources.Create(Job(empty))).Message);
        Assert.Equal("Data.Path", Assert.Throws<JobSpecException>(() => BatchSources.Create(Job(scratch.NewFile(".parquet")))).Field);
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        var spec = WriteLists(features, targets, 10);
        foreach (long rows in new long[] { 0, Samples + 1 })
            Assert.Contains($"the job trains on the first {rows} rows, but the file holds {Samples}",
                Assert.Throws<InvalidDataException>(() => BatchSources.Create(spec, trainRows: rows)).Message);
    }

    [Fact]
    public void A_job_on_a_parquet_file_trains_bit_for_bit_like_its_safetensors_copy()
    {
        using var scope = NewDisposeScope();
        var (features, targets) = Data();
        using var parquet = new InProcessTrainer(WriteLists(features, targets, rowGroupRows: Samples));
        using var safetensors = new InProcessTrainer(WriteSafetensors(features, targets));
        for (int step = 0; step < 20; step++)   // several epochs
        {
            double expected = safetensors.Step().Loss;
            double actual = parquet.Step().Loss;
            Assert.True(expected == actual, $"step {step}: loss {actual:R} on parquet, {expected:R} on safetensors");
        }
        Assert.All(parquet.Parameters(), kv => Assert.True(Same(safetensors.Parameters()[kv.Key], kv.Value), kv.Key));
    }
}
