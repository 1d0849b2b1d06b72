#!/usr/bin/env nextflow
// hello-nf: greets each name in `names`, then collects the greetings into one file
// (<outdir>/greetings.txt, default results/greetings.txt in the run directory). DSL2.

nextflow.enable.dsl = 2

params.greeting = 'Hello'
params.names = ['world', 'SPE']
params.outdir = 'results'

process SAY_HELLO {
    input:
    val name

    output:
    path 'greeting.txt'

    script:
    """
    echo '${params.greeting}, ${name}!' > greeting.txt
    """
}

process COLLECT {
    publishDir params.outdir, mode: 'copy'

    input:
    path 'greeting*.txt'

    output:
    path 'greetings.txt'

    script:
    """
    cat greeting*.txt | sort > greetings.txt
    """
}

workflow {
    Channel.fromList(params.names) | SAY_HELLO | collect | COLLECT
}
