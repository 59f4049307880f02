# Videos in: the synthetic demo, then the per-dataset segment index.


include: "inputs/decode.smk"


rule generate_demo:
    output:
        **generated_manifest("{dataset}"),
    log:
        "logs/{dataset}/generate_demo.log",
    benchmark:
        "benchmarks/rules/{dataset}/generate_demo.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        generate=get_generate_params,
    script:
        "../scripts/generate_demo.py"


checkpoint segment_index:
    input:
        unpack(get_dataset_files),
    output:
        index="results/{dataset}/segments.tsv",
    log:
        "logs/{dataset}/segment_index.log",
    benchmark:
        "benchmarks/rules/{dataset}/segment_index.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        spec=get_reader_spec,
        segment_length=config["segment_length"],
        segment_stride=segment_stride(),
        frame_step=get_frame_step,
        on_bad_video=config["on_bad_video"],
    script:
        "../scripts/segment_index.py"
